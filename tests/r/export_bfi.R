# Export the agreeableness and conscientiousness items of psychTools::bfi (6-point ordinal, complete
# rows) for the polychoric WLSMV parity test (tests/test_wlsmv.py).
# Usage: Rscript export_bfi.R OUT_CSV
suppressPackageStartupMessages(library(psychTools))
args <- commandArgs(trailingOnly = TRUE)
data(bfi, package = "psychTools")
items <- c("A1", "A2", "A3", "A4", "A5", "C1", "C2", "C3", "C4", "C5")
x <- bfi[complete.cases(bfi[, items]), items]
write.csv(x, args[1], row.names = FALSE)
