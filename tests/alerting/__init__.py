"""Operator alerts and science alerts: Prometheus rules under promtool, the metrics they read scraped from
running daemons, the Alertmanager example, the Grafana dashboard, and VOEvent delivery."""
