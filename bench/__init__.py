"""Load benchmarks of wxauth: `python -m bench messages|callbacks` prints figures from one run."""
