"""The paper's claims tested on the study's runs, and the report page: the claims and their verdicts (catalogue),
what they read from the study's outputs (inputs), the intervals and surface measures (measures), and report.html
(page). ``python -m figures.claims`` is the command; ``figures.study`` runs it as its last stage."""
