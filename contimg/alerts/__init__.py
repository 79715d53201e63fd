"""Science alerts leaving the pipeline: VOEvent 2.0 documents and the sinks they are delivered to."""
