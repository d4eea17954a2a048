# Reference within/between decomposition from psych::statsBy (tests/test_multilevel.py).
# Usage: Rscript psych_statsby.R IN_CSV GROUPS OUT_DIR
# IN_CSV: a header row; the grouping column(s) named in GROUPS (comma-separated, e.g. "model" or
# "model,prompt"), every other column a variable (0/1 words). Writes to OUT_DIR: rwg.csv, rbg.csv,
# pwg.csv, pbg.csv (variables x variables, psych's order), per_variable.csv (ICC1, ICC2, F, ci1, ci2,
# etabg, etawg per variable) and means.csv (the group means, one row per group present).
suppressPackageStartupMessages(library(psych))
args <- commandArgs(trailingOnly = TRUE)
x <- read.csv(args[1], check.names = FALSE, stringsAsFactors = FALSE)
groups <- strsplit(args[2], ",")[[1]]
out <- args[3]
dir.create(out, showWarnings = FALSE, recursive = TRUE)
sb <- suppressWarnings(statsBy(x, group = groups, cors = FALSE, alpha = 0.05))
vars <- setdiff(colnames(x), groups)
strip <- function(m) {
  m <- as.matrix(m)
  dimnames(m) <- list(vars, vars)
  m
}
write.csv(strip(sb$rwg), file.path(out, "rwg.csv"), row.names = FALSE)
write.csv(strip(sb$rbg), file.path(out, "rbg.csv"), row.names = FALSE)
write.csv(strip(sb$pwg), file.path(out, "pwg.csv"), row.names = FALSE)
write.csv(strip(sb$pbg), file.path(out, "pbg.csv"), row.names = FALSE)
per <- data.frame(
  variable = vars,
  ICC1 = sb$ICC1[vars], ICC2 = sb$ICC2[vars], F = sb$F[vars],
  ci1_lower = sb$ci1[vars, "L1"], ci1_upper = sb$ci1[vars, "U1"],
  ci2_lower = sb$ci2[vars, "L2"], ci2_upper = sb$ci2[vars, "U2"],
  etabg = unname(sb$etabg), etawg = unname(sb$etawg)
)
write.csv(per, file.path(out, "per_variable.csv"), row.names = FALSE)
write.csv(sb$mean[, vars, drop = FALSE], file.path(out, "means.csv"), row.names = FALSE)
