"""GigCo: a gig marketplace whose job lifecycle runs on Flask, PostgreSQL and Celery."""
