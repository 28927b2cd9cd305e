"""One functional builder per model family."""
