#!/bin/sh
# runtime-packages.sh FILE...: prints, one per line and sorted, the Debian packages that own the
# shared libraries the given ELF files load (ldd), so the Dockerfile's runtime stage installs exactly
# what the built binaries need and none of the -dev packages, compilers or LibTorch headers of the
# build stage. Files that are not dynamic ELF executables (scripts, data) are skipped. Libraries that
# no package owns (built in the tree, or a LibTorch copied in by hand) are printed to stderr as
# "unpackaged: PATH" so the caller can copy them. Unresolved libraries fail it, except the NVIDIA
# driver's.
set -eu

[ $# -gt 0 ] || {
  echo "usage: $0 FILE..." >&2
  exit 2
}

libs="$(mktemp)"
trap 'rm -f "$libs" "$libs.candidates" "$libs.owners"' EXIT

for file in "$@"; do
  [ -f "$file" ] || continue
  # ldd says "not a dynamic executable" (and fails) for static binaries and non-ELF files.
  ldd "$file" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' >>"$libs" || true
  # The NVIDIA driver's libraries (libcuda, libnvidia-*) come from the host at run time (NVIDIA
  # Container Toolkit); anything else unresolved would be missing in the image too.
  if ldd "$file" 2>/dev/null | grep 'not found' | grep -qv -e 'libcuda\.so' -e 'libnvidia-'; then
    echo "runtime-packages.sh: $file has unresolved libraries:" >&2
    ldd "$file" | grep 'not found' >&2
    exit 1
  fi
done

# One dpkg-query over every spelling of every library: dpkg knows a path as installed, which may
# differ from ldd's by the /usr merge or by symlinks. Output lines are "pkg[:arch][, pkg...]: path".
sort -u "$libs" | while read -r lib; do
  real="$(readlink -f "$lib")"
  for candidate in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    echo "$lib $candidate"
  done
done | sort -u >"$libs.candidates"
cut -d' ' -f2 "$libs.candidates" | sort -u | xargs dpkg-query -S 2>/dev/null >"$libs.owners" || true
awk '
  FNR == NR {  # dpkg-query -S output: "pkg:arch, pkg2: /path"
    i = index($0, ": ")
    path = substr($0, i + 2)
    pkgs = substr($0, 1, i - 1)
    split(pkgs, list, ", ")
    sub(/:.*/, "", list[1])
    owner[path] = list[1]
    next
  }
  {  # candidates: "lib candidate"
    if (!($1 in found) && ($2 in owner)) found[$1] = owner[$2]
    libs[$1] = 1
  }
  END {
    for (lib in libs) {
      if (lib in found) print found[lib]
      else print "unpackaged: " lib > "/dev/stderr"
    }
  }
' "$libs.owners" "$libs.candidates" | sort -u
