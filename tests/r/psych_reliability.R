# Reference reliability coefficients from psych (tests/test_projective_reliability.py).
# Usage: Rscript psych_reliability.R ITEMS_CSV RATINGS_CSV OUT_JSON_DIR
# ITEMS_CSV: subjects x items (header row); alpha (Feldt CI) and omega with one factor, no flipping.
# RATINGS_CSV: targets x raters (header row, complete rows); ICC(lmer = FALSE).
suppressPackageStartupMessages(library(psych))
args <- commandArgs(trailingOnly = TRUE)
items <- read.csv(args[1])
ratings <- read.csv(args[2])
out <- args[3]
a <- psych::alpha(items, warnings = FALSE)
o <- suppressMessages(suppressWarnings(psych::omega(items, nfactors = 1, fm = "minres", flip = FALSE, plot = FALSE)))
icc <- psych::ICC(ratings, lmer = FALSE)$results
num <- function(v) formatC(v, digits = 15, format = "g")
lines <- c(
  paste0("raw_alpha,", num(a$total$raw_alpha)),
  paste0("std_alpha,", num(a$total$std.alpha)),
  paste0("average_r,", num(a$total$average_r)),
  paste0("feldt_low,", num(unlist(a$feldt$lower.ci))),
  paste0("feldt_high,", num(unlist(a$feldt$upper.ci))),
  paste0("omega_total,", num(o$omega.tot)),
  paste0("omega_h,", num(o$omega_h))
)
writeLines(c("name,value", lines), file.path(out, "alpha_omega.csv"))
colnames(icc) <- c("type", "icc", "f", "df1", "df2", "p", "low", "high")
write.csv(icc, file.path(out, "icc.csv"), row.names = FALSE)
