"""The model-evolution fuzzer: seeded model histories run through makemigrations and migrate on three engines.

- `models.py`: the generator. `random.Random(seed)` gives a sequence of model states (SQLAlchemy 2 declarative
  classes, rendered as the models module of a throwaway project) and the changes a team makes between them.
- `schema.py`: a database's reflected schema as each engine reports it, and the differences between two.
- `harness.py`: one seed in a project copy (makemigrations, migrate with rows, compared with `create_all()` of
  the same models; at the end the walk back to zero, migrate again, a squash), its failures classified by kind.
- `__main__.py`: `python -m tests.fuzz --seeds 50 --steps 8` (`make fuzz`), the long run and its figures.

tests/test_fuzz.py runs a few seeds in `make test`; docs/testing.md describes the whole.
"""
