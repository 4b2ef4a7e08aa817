#!/usr/bin/env bash
# Rebuilds bench/results/quality.md from the measurement tables (run after measure.py).
cd "$(dirname "$0")/../.."
{
echo "# Quality measurements (issue 12)"
echo
echo "Made by \`bench/quality/measure.py\` (raw: quality_runs.json) and \`bench/parity/run_parity.py\`"
echo "(raw: parity.json, curves: parity_curves.svg) on the 2-core development machine, shared with"
echo "other agents (load average per run in the tables). Recipe: CNN 64 px, 2 ranks, batch 32/rank,"
echo "SGD lr 0.05 cosine, warmup 10 steps, label smoothing 0.1, seed 1; test split scored with"
echo "\`dptrain eval\`. Discussion: docs/quality.md."
echo
echo "## Parity (val macro-F1, 3 seeds)"
echo
echo "| dataset | dptrain | PyTorch twin | diff | 2 pooled SD | goal |"
echo "|---|---|---|---|---|---|"
echo "| Fashion-MNIST (15k train, 3 epochs) | 0.8282 +- 0.0010 | 0.8157 +- 0.0012 | +0.0125 | 0.0022 | >= -1 pt met, within 2 SD not met (dptrain better) |"
echo "| shopsight5 (4k, 5 epochs) | 0.5408 +- 0.0312 | 0.5231 +- 0.0322 | +0.0177 | 0.0634 | met |"
echo
echo "## Augmentation policy and imbalance (test split, per-class F1)"
cat bench/results/quality_tables.md
} > bench/results/quality.md
