"""ML Metadata records made by hand for the report tests."""

from typing import Union

from ml_metadata.proto import metadata_store_pb2


def mlmd_artifact(**properties: Union[int, float, str]) -> metadata_store_pb2.Artifact:
  """An MLMD Artifact whose custom properties are `properties`: an int as int_value, a float as double_value,
  anything else as string_value (as the components write them)."""
  artifact = metadata_store_pb2.Artifact()
  for name, value in properties.items():
    if isinstance(value, int):
      artifact.custom_properties[name].int_value = value
    elif isinstance(value, float):
      artifact.custom_properties[name].double_value = value
    else:
      artifact.custom_properties[name].string_value = value
  return artifact
