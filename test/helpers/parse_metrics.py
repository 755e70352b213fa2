#!/usr/bin/python3
"""Parse Prometheus text exposition from stdin with the Prometheus project's own Python parser
(Debian's python3-prometheus-client); print the families as JSON. Exit 1 on a parse error."""
import json, sys
from prometheus_client.parser import text_string_to_metric_families

try:
    out = []
    for fam in text_string_to_metric_families(sys.stdin.read()):
        out.append({"name": fam.name, "type": fam.type, "help": fam.documentation,
                    "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in fam.samples]})
except Exception as e:  # the parser raises ValueError (and others) on malformed input
    print(f"not valid Prometheus text: {e}", file=sys.stderr)
    sys.exit(1)
print(json.dumps(out))
