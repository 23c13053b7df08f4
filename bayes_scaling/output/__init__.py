"""Output: tidy exports, figures and the HTML report."""
