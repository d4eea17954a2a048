# Reference tetrachoric correlations from psych (tests/test_efa.py).
# Usage: Rscript psych_tetrachoric.R IN_CSV OUT_CSV [smooth]
# IN_CSV: a 0/1 data set with a header row; OUT_CSV: the tetrachoric matrix (psych's default
# correction of 0.5 for zero cells; smoothing only when the third argument is "smooth").
suppressPackageStartupMessages(library(psych))
args <- commandArgs(trailingOnly = TRUE)
x <- read.csv(args[1])
smooth <- length(args) >= 3 && args[3] == "smooth"
tet <- suppressMessages(suppressWarnings(tetrachoric(x, correct = 0.5, smooth = smooth)))
write.csv(tet$rho, args[2], row.names = FALSE)
