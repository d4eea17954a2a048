# Reference WLSMV fits from lavaan for tests/test_wlsmv.py (binary and ordinal indicators).
# Usage: Rscript lavaan_wlsmv.R CASES_CSV
# CASES_CSV has columns data, model, out: a data CSV (integer columns, all declared ordered), a file
# with lavaan model syntax, and an output prefix. For each case this writes
#   OUT_status.csv    name,value: converged, post_check, warnings, npar, ntotal
#   OUT_estimates.csv parameterEstimates(standardized = TRUE): lhs, op, rhs, est, se, std.all
#   OUT_fit.csv       name,value: fitMeasures (absent when lavaan refuses them: not converged)
#   OUT_test.csv      name,value: the scaled-shifted test's shift and traces
#   OUT_sample.csv    name,value: thresholds and polychoric correlations (wls.obs, lavaan's order)
#   OUT_gamma.csv     the NACOV matrix (lavInspect(fit, "gamma"))
suppressPackageStartupMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
cases <- read.csv(args[1], stringsAsFactors = FALSE)
measures <- c(
  "npar", "chisq", "df", "pvalue", "chisq.scaled", "df.scaled", "pvalue.scaled", "chisq.scaling.factor",
  "baseline.chisq", "baseline.df", "baseline.chisq.scaled", "baseline.df.scaled",
  "cfi", "tli", "cfi.scaled", "tli.scaled", "cfi.robust", "tli.robust",
  "rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.scaled", "rmsea.ci.lower.scaled", "rmsea.ci.upper.scaled",
  "rmsea.robust", "rmsea.ci.lower.robust", "rmsea.ci.upper.robust", "srmr"
)
pairs <- function(values) data.frame(name = names(values), value = as.numeric(values))

for (i in seq_len(nrow(cases))) {
  data <- read.csv(cases$data[i], check.names = FALSE)
  model <- paste(readLines(cases$model[i]), collapse = "\n")
  out <- cases$out[i]
  seen <- character(0)
  fit <- withCallingHandlers(
    cfa(model, data = data, ordered = names(data), estimator = "WLSMV"),
    warning = function(w) {
      seen <<- c(seen, gsub("\\s+", " ", conditionMessage(w)))
      invokeRestart("muffleWarning")
    }
  )
  post <- suppressWarnings(lavInspect(fit, "post.check"))
  status <- data.frame(
    name = c("converged", "post_check", "warnings", "npar", "ntotal"),
    value = c(lavInspect(fit, "converged"), post, paste(seen, collapse = " | "),
              lavInspect(fit, "npar"), lavInspect(fit, "ntotal"))
  )
  write.csv(status, paste0(out, "_status.csv"), row.names = FALSE)
  est <- parameterEstimates(fit, standardized = TRUE)
  write.csv(est[, c("lhs", "op", "rhs", "est", "se", "std.all")], paste0(out, "_estimates.csv"), row.names = FALSE)
  fm <- tryCatch(suppressWarnings(fitMeasures(fit, measures)), error = function(e) NULL)
  if (!is.null(fm)) write.csv(pairs(fm), paste0(out, "_fit.csv"), row.names = FALSE)
  test <- lavInspect(fit, "test")$scaled.shifted
  if (!is.null(test)) {
    write.csv(pairs(c(shift.parameter = test$shift.parameter, trace.UGamma = test$trace.UGamma,
                      trace.UGamma2 = test$trace.UGamma2)), paste0(out, "_test.csv"), row.names = FALSE)
  }
  write.csv(pairs(lavInspect(fit, "wls.obs")), paste0(out, "_sample.csv"), row.names = FALSE)
  write.csv(lavInspect(fit, "gamma"), paste0(out, "_gamma.csv"), row.names = FALSE)
}
