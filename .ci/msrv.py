"""MSRV check: no package in the dependency graph declares a rust-version
newer than frameloop's own (clippy's incompatible_msrv checks our code)."""
import json
import subprocess
import sys

meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--quiet"],
    check=True, capture_output=True, text=True).stdout)


def version(text):
    parts = [int(x) for x in text.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


ours = next(p for p in meta["packages"] if p["name"] == "frameloop")["rust_version"]
late = [f'{p["name"]} {p["version"]} needs {p["rust_version"]}'
        for p in meta["packages"]
        if p.get("rust_version") and version(p["rust_version"]) > version(ours)]
if late:
    sys.exit(f"rust-version {ours}, but: " + "; ".join(late))
print(f"rust-version {ours}: {len(meta['packages'])} packages checked")
