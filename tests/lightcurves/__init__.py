"""Light curves: update-lightcurves through a real worker, its metrics, alerts, events and commands."""
