"""No models: the generated migrations (bench/histories.py: generate_django) are the whole history."""
