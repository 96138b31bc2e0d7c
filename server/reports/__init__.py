"""Business reports (sales by dimension; the GLI-31 report set) as JSON and CSV, scoped by role and tenant."""
