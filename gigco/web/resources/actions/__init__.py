"""The actions resource: what consumers, workers and operators do to a job."""
