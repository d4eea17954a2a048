# Reference WLSMV fits from lavaan for tests/test_wlsmv.py (binary and ordinal indicators).
# Usage: Rscript lavaan_wlsmv.R DATA_CSV MODEL_TXT OUT_PREFIX
# DATA_CSV: the indicators (integers; every column is declared ordered); MODEL_TXT: lavaan syntax.
# Writes OUT_PREFIX_estimates.csv (parameterEstimates with std.all), OUT_PREFIX_fit.csv (name,value:
# fitMeasures, or nothing when lavaan refuses them), OUT_PREFIX_status.csv (name,value: converged,
# post.check, vcov positive definite, warnings) and OUT_PREFIX_sample.csv (thresholds and
# polychoric correlations, lavaan's order) and OUT_PREFIX_gamma.csv (the NACOV matrix).
suppressPackageStartupMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1], check.names = FALSE)
model <- paste(readLines(args[2]), collapse = "\n")
out <- args[3]

warnings_seen <- character(0)
fit <- withCallingHandlers(
  cfa(model, data = data, ordered = names(data), estimator = "WLSMV"),
  warning = function(w) {
    warnings_seen <<- c(warnings_seen, gsub("\\s+", " ", conditionMessage(w)))
    invokeRestart("muffleWarning")
  }
)
converged <- lavInspect(fit, "converged")
post <- suppressWarnings(lavInspect(fit, "post.check"))
status <- data.frame(
  name = c("converged", "post_check", "warnings", "npar", "ntotal"),
  value = c(converged, post, paste(warnings_seen, collapse = " | "), lavInspect(fit, "npar"), lavInspect(fit, "ntotal"))
)
write.csv(status, paste0(out, "_status.csv"), row.names = FALSE)

est <- parameterEstimates(fit, standardized = TRUE)
write.csv(est[, c("lhs", "op", "rhs", "est", "se", "std.all")], paste0(out, "_estimates.csv"), row.names = FALSE)

measures <- c(
  "npar", "chisq", "df", "pvalue", "chisq.scaled", "df.scaled", "pvalue.scaled", "chisq.scaling.factor",
  "baseline.chisq", "baseline.df", "baseline.chisq.scaled", "baseline.df.scaled",
  "cfi", "tli", "cfi.scaled", "tli.scaled", "cfi.robust", "tli.robust",
  "rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.scaled", "rmsea.ci.lower.scaled", "rmsea.ci.upper.scaled",
  "rmsea.robust", "rmsea.ci.lower.robust", "rmsea.ci.upper.robust", "srmr"
)
fm <- tryCatch(fitMeasures(fit, measures), error = function(e) NULL)
if (!is.null(fm)) {
  write.csv(data.frame(name = names(fm), value = as.numeric(fm)), paste0(out, "_fit.csv"), row.names = FALSE)
}
test <- lavInspect(fit, "test")
if (!is.null(test$scaled.shifted)) {
  shift <- data.frame(name = c("shift.parameter", "trace.UGamma", "trace.UGamma2"),
                      value = c(test$scaled.shifted$shift.parameter, test$scaled.shifted$trace.UGamma,
                                test$scaled.shifted$trace.UGamma2))
  write.csv(shift, paste0(out, "_test.csv"), row.names = FALSE)
}

wls <- lavInspect(fit, "wls.obs")
write.csv(data.frame(name = names(wls), value = as.numeric(wls)), paste0(out, "_sample.csv"), row.names = FALSE)
write.csv(lavInspect(fit, "gamma"), paste0(out, "_gamma.csv"), row.names = FALSE)
