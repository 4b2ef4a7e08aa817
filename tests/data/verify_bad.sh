#!/bin/sh
# verify's exit codes on the h5py bad-shard corpus: a schema error -> exit 2
# with a SCHEMA_ERROR line naming the file and record; a good shard -> exit 0.
# usage: verify_bad.sh DPTRAIN FIXTURE_DIR
set -u
D="$1"; F="$2/data"
out=$("$D" data verify --quiet "$F/good_contig.h5" "$F/bad_label.h5"); rc=$?
[ "$rc" = 2 ] || { echo "FAIL: verify exit $rc on a bad shard, want 2"; exit 1; }
echo "$out" | grep -q "^SCHEMA_ERROR	$F/bad_label.h5	.*record 21 " || { echo "FAIL: no SCHEMA_ERROR line: $out"; exit 1; }
# good_contig's records are not JPEGs (test bytes): all corrupt, exit 0 without --strict, 2 (bad input) with it.
"$D" data verify --quiet "$F/good_contig.h5" > /dev/null; rc=$?
[ "$rc" = 0 ] || { echo "FAIL: verify exit $rc without --strict, want 0"; exit 1; }
"$D" data verify --quiet --strict "$F/good_contig.h5" > /dev/null; rc=$?
[ "$rc" = 2 ] || { echo "FAIL: verify --strict exit $rc, want 2"; exit 1; }
n=$("$D" data verify --quiet "$F/good_contig.h5" | grep -c "^CORRUPT")
[ "$n" = 40 ] || { echo "FAIL: $n corrupt records listed, want 40"; exit 1; }
"$D" data inspect "$F/good_chunked.h5" | grep -q "^0    alpha  *14  *35.00%" || { echo "FAIL: inspect counts"; exit 1; }
echo "verify/inspect exit codes OK"
