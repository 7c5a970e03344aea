"""The process environment every entry point sets up before TensorFlow is imported.

TensorFlow Recommenders and TensorFlow Transform's Keras layers need Keras 2 (`tf_keras`). TensorFlow reads
`TF_USE_LEGACY_KERAS` once, when it is first imported, so each entry point (the runners, the serving CLIs, the
test session) calls `use_legacy_keras()` before anything imports TensorFlow. The pipeline image sets the same
variable in its Dockerfile.
"""

import os
import sys

LEGACY_KERAS_VARIABLE = 'TF_USE_LEGACY_KERAS'


def use_legacy_keras() -> None:
  """Makes `tf.keras` resolve to Keras 2 (`tf_keras`) in this process and its children.

  Raises:
    RuntimeError: if TensorFlow was already imported with Keras 3, where setting the variable is too late.
  """
  os.environ[LEGACY_KERAS_VARIABLE] = '1'
  tf_module = sys.modules.get('tensorflow')
  if tf_module is None:
    return
  keras_module = getattr(getattr(tf_module, 'keras', None), '__name__', '')
  if not keras_module.startswith('tf_keras'):
    raise RuntimeError(
        f'TensorFlow was imported before {LEGACY_KERAS_VARIABLE}=1 was set, so tf.keras is '
        f'{keras_module or "Keras 3"}. Call pipeline.environment.use_legacy_keras() before importing '
        'TensorFlow, or export TF_USE_LEGACY_KERAS=1.')
