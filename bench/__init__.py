"""Load benchmarks of wxauth: `python -m bench messages|callbacks|soak` prints figures from one run."""
