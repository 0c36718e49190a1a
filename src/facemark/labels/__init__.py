"""Training labels: annotation files, teachers and their ensemble, teacher labelling, error analysis
(cleaning) and the training cache."""
