#!/usr/bin/python3
"""Writes a CycloneDX 1.5 JSON SBOM for a Cordon root filesystem image.

Components: every Cordon binary in the image (ours, with the firmware version and its
SHA-256) and every Debian package that provides a shared library one of them loads
(ldd -> file -> `dpkg-query -S` -> package, with its installed version and architecture).
Dependencies: each binary -> the packages it needs.

Plugins loaded with dlopen are invisible to ldd: `--plugins BINARY_NAME=DIR` counts every
shared object in DIR (and what it links) as a dependency of that binary. DPDK's EAL loads
every driver in its plugin directory at start, so the dataplane needs the whole directory.

Usage: sbom.py --version V --out FILE [--image-name NAME] [--plugins NAME=DIR]... BINARY...
A library no Debian package owns is an error: the SBOM must be complete or not be written.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone


def library_cache():
    """Library soname -> path for this machine's architecture, from `ldconfig -p`: the
    same cache the dynamic loader resolves DT_NEEDED entries with."""
    out = subprocess.run(["ldconfig", "-p"], check=True, capture_output=True, text=True).stdout
    entries = []
    for line in out.splitlines()[1:]:
        # "\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3"
        left, _, path = line.strip().partition(" => ")
        soname, _, flags = left.partition(" ")
        entries.append((soname, flags, path))
    # Native entries are the majority; foreign-architecture ones (multiarch) are skipped.
    native = max({f for _, f, _ in entries}, key=lambda f: sum(e[1] == f for e in entries))
    cache = {}
    for soname, flags, path in entries:
        if flags == native:
            cache.setdefault(soname, path)
    return cache


def needed(objects):
    """Each ELF object's DT_NEEDED sonames and its interpreter, from one objdump run.

    ldd would execute the loader once per object (over a minute for DPDK's 170 driver
    plugins); reading the dynamic sections gives the same closure in well under a second."""
    out = subprocess.run(["objdump", "-p", *objects], check=True, capture_output=True,
                         text=True).stdout
    result = {o: [] for o in objects}
    current = None
    for line in out.splitlines():
        for o in objects:
            if line.startswith(o + ":"):
                current = o
                break
        else:
            fields = line.split()
            if current and len(fields) == 2 and fields[0] == "NEEDED":
                result[current].append(fields[1])
    return result


def shared_libraries(objects, cache):
    """Resolved paths of every shared object `objects` load, transitively, plus the
    dynamic loader."""
    found = set()
    todo = list(objects)
    while todo:
        for obj, sonames in needed(todo).items():
            for soname in sonames:
                if soname not in cache:
                    raise SystemExit(f"sbom: {obj}: library {soname} not found")
        todo = sorted({cache[n] for names in needed(todo).values() for n in names} - found)
        found.update(todo)
    interp = subprocess.run(["readelf", "-l", objects[0]], check=True, capture_output=True,
                            text=True).stdout
    for line in interp.splitlines():
        if "Requesting program interpreter:" in line:
            found.add(line.split(":", 1)[1].strip().rstrip("]"))
    return found


def dpkg_file_owners(dpkg_info="/var/lib/dpkg/info"):
    """Path -> package (name:arch as dpkg names it), from dpkg's file lists, read once.

    The same data `dpkg-query -S` searches, but one `dpkg-query -S` call per library
    re-reads every list and takes seconds each."""
    owners = {}
    for entry in os.listdir(dpkg_info):
        if not entry.endswith(".list"):
            continue
        pkg = entry[:-len(".list")]
        with open(os.path.join(dpkg_info, entry), encoding="utf-8", errors="replace") as f:
            for line in f:
                owners.setdefault(line.rstrip("\n"), pkg)
    return owners


def owning_package(owners, path):
    """The Debian package that ships `path`, trying the merged-/usr aliases."""
    real = os.path.realpath(path)
    candidates = [path, real]
    for p in (path, real):
        candidates.append(p[len("/usr"):] if p.startswith("/usr/") else "/usr" + p)
    for candidate in candidates:
        if candidate in owners:
            return owners[candidate]
    raise SystemExit(f"sbom: no Debian package owns {path}")


def package_info(pkgs):
    """name:arch -> {name, version, arch, source, source_version}, one dpkg-query run."""
    fmt = "${binary:Package}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fmt, *sorted(pkgs)], check=True,
                         capture_output=True, text=True).stdout
    infos = {}
    for line in out.splitlines():
        full, name, version, arch, src, src_version = line.split("\t")
        info = {"name": name, "version": version, "arch": arch, "source": src,
                "source_version": src_version}
        infos[full] = info
        infos[name] = info
    return infos


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--image-name", default="cordon-rootfs")
    ap.add_argument("--plugins", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("binaries", nargs="+")
    args = ap.parse_args()
    plugins = {}
    for spec in args.plugins:
        name, _, directory = spec.partition("=")
        plugins[name] = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                               if ".so" in f and os.path.isfile(os.path.join(directory, f)))

    owners = dpkg_file_owners()
    cache = library_cache()
    loaded_by = {}  # binary -> every file it loads
    for binary in args.binaries:
        extra = plugins.get(os.path.basename(binary), [])
        loaded_by[binary] = set(extra) | shared_libraries([binary] + extra, cache)
    pkg_of = {lib: owning_package(owners, lib) for libs in loaded_by.values() for lib in libs}
    infos = package_info(set(pkg_of.values()))

    packages = {}  # bom-ref -> component
    ours = []
    dependencies = []
    for binary in args.binaries:
        name = os.path.basename(binary)
        ref = f"cordon/{name}@{args.version}"
        ours.append({
            "type": "application", "bom-ref": ref, "name": name, "version": args.version,
            "supplier": {"name": "Cordon"},
            "hashes": [{"alg": "SHA-256", "content": sha256(binary)}],
            "purl": f"pkg:generic/cordon/{name}@{args.version}",
        })
        needs = set()
        for lib in sorted(loaded_by[binary]):
            info = infos[pkg_of[lib]]
            pref = f"pkg:deb/debian/{info['name']}@{info['version']}?arch={info['arch']}"
            if pref not in packages:
                comp = {"type": "library", "bom-ref": pref, "name": info["name"],
                        "version": info["version"], "purl": pref,
                        "supplier": {"name": "Debian"}}
                if info["source"] and info["source"] != info["name"]:
                    comp["properties"] = [
                        {"name": "debian:source", "value": info["source"]},
                        {"name": "debian:source_version", "value": info["source_version"]}]
                packages[pref] = comp
            needs.add(pref)
        dependencies.append({"ref": ref, "dependsOn": sorted(needs)})

    image_ref = f"cordon/{args.image_name}@{args.version}"
    dependencies.insert(0, {"ref": image_ref, "dependsOn": [c["bom-ref"] for c in ours]})
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "cordon images/sbom.py"}]},
            "component": {"type": "firmware", "bom-ref": image_ref, "name": args.image_name,
                          "version": args.version, "supplier": {"name": "Cordon"}},
        },
        "components": ours + sorted(packages.values(), key=lambda c: c["name"]),
        "dependencies": dependencies,
    }
    with open(args.out + ".tmp", "w") as f:
        json.dump(bom, f, indent=2)
        f.write("\n")
    os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
