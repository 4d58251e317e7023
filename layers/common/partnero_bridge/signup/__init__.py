"""Sign-ups from a shop's forms: a referred visitor becomes a Partnero customer."""
