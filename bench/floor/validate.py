"""The floor of `flannel-wizard validate`: what any YAML-plus-pydantic validator pays to read the same
file — import yaml and pydantic, load the YAML, build a small model of it (one field per section).
Run by bench/startup.py with the same interpreter; not a test."""

import sys

import yaml
from pydantic import BaseModel


class Small(BaseModel):
    etcd: dict
    network: dict
    flanneld: dict
    docker: dict
    cgroup: dict
    smoke_test: dict


with open(sys.argv[1]) as f:
    Small.model_validate(yaml.safe_load(f))
print("ok")
