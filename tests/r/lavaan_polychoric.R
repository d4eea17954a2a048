# Reference polychoric correlations for tests/test_polychoric.py: lavaan's and psych's.
# Usage: Rscript lavaan_polychoric.R CASES_CSV
# CASES_CSV has columns data, out: a data CSV (integer columns, all treated as ordered) and an output
# prefix. For each case this writes
#   OUT_lavaan.csv    lavCor(x, ordered = names(x)): lavaan's two-step polychoric matrix
#   OUT_psych.csv     psych::polychoric(x, correct = 0, smooth = FALSE)$rho: no continuity correction
#                     (psych adds 0.5 to empty cells by default; lavaan only corrects 2 x 2 tables)
#   OUT_warnings.csv  lavaan's warnings
suppressPackageStartupMessages({
  library(lavaan)
  library(psych)
})
args <- commandArgs(trailingOnly = TRUE)
cases <- read.csv(args[1], stringsAsFactors = FALSE)
for (i in seq_len(nrow(cases))) {
  x <- read.csv(cases$data[i], check.names = FALSE)
  out <- cases$out[i]
  seen <- character(0)
  r <- withCallingHandlers(lavCor(x, ordered = names(x)), warning = function(w) {
    seen <<- c(seen, gsub("\\s+", " ", conditionMessage(w)))
    invokeRestart("muffleWarning")
  })
  write.csv(unclass(r), paste0(out, "_lavaan.csv"), row.names = FALSE)
  p <- suppressMessages(suppressWarnings(polychoric(x, correct = 0, smooth = FALSE, max.cat = 20)))
  write.csv(p$rho, paste0(out, "_psych.csv"), row.names = FALSE)
  write.csv(data.frame(warning = seen), paste0(out, "_warnings.csv"), row.names = FALSE)
}
