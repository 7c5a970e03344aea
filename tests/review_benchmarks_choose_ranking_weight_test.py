"""benchmarks/choose_ranking_weight.py: a results file that cannot be read is an exit status 2 naming it."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import choose_ranking_weight  # pylint: disable=g-import-not-at-top,wrong-import-position

FIGURES = {'recall': 0.4, 'ndcg': 0.2, 'liked_recall': 0.3, 'disliked_per_k': 0.1, 'hit_rating': 4.0}


def _write(path, text: str) -> str:
  path.write_text(text, encoding='utf-8')
  return str(path)


def test_a_missing_file_exits_2_naming_it(tmp_path, capsys):
  good = _write(tmp_path / 'a.json', json.dumps({'0': FIGURES}))
  missing = str(tmp_path / 'missing.json')
  assert choose_ranking_weight.main([good, missing]) == 2  # before: a FileNotFoundError traceback
  err = capsys.readouterr().err
  assert err.startswith(f'{missing}: cannot be read as serving_quality.py --results-json output ([Errno 2] ')
  assert err.rstrip().endswith('pass the files that --results-json wrote.')


def test_a_file_that_is_not_json_exits_2_naming_it(tmp_path, capsys):
  broken = _write(tmp_path / 'b.json', '{"0": ')
  assert choose_ranking_weight.main([broken]) == 2  # before: a JSONDecodeError traceback
  assert capsys.readouterr().err.startswith(f'{broken}: cannot be read as serving_quality.py --results-json output')


def test_a_file_without_the_figures_exits_2_naming_it(tmp_path, capsys):
  # A weight's figures without hit_rating: before, a KeyError traceback from mean_results.
  partial = _write(tmp_path / 'c.json', json.dumps({'0': {k: v for k, v in FIGURES.items() if k != 'hit_rating'}}))
  assert choose_ranking_weight.main([partial]) == 2
  assert capsys.readouterr().err.startswith(
      f'{partial}: not serving_quality.py --results-json output ({{ranking weight: {{figure: value}}}} with recall, '
      'ndcg, liked_recall, disliked_per_k, hit_rating)')


def test_good_files_still_give_the_rule_s_weight(tmp_path, capsys):
  # Weight 0.5: recall 0.396 >= 0.99 x 0.4 and liked recall 0.35 > 0.3: chosen.
  path = _write(tmp_path / 'd.json', json.dumps({'0': FIGURES, '0.5': dict(FIGURES, recall=0.396, liked_recall=0.35)}))
  assert choose_ranking_weight.main([path]) == 0
  assert capsys.readouterr().out.splitlines()[-1].endswith('retrieval only): 0.5')
