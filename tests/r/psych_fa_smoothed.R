# Reference psych::fa fit statistics, Bartlett's test and KMO on a given (smoothed) correlation matrix,
# for tests/test_efa.py. Usage: Rscript psych_fa_smoothed.R MATRIX_CSV N_OBS N_FACTORS OUT_PREFIX
# Writes OUT_PREFIX_scalars.csv (name,value) and OUT_PREFIX_loadings.csv (rows = variables).
suppressPackageStartupMessages({
  library(psych)
  library(GPArotation)
})
args <- commandArgs(trailingOnly = TRUE)
r <- as.matrix(read.csv(args[1], check.names = FALSE))
rownames(r) <- colnames(r)
n <- as.numeric(args[2])
k <- as.integer(args[3])
out <- args[4]
f <- suppressMessages(suppressWarnings(fa(r, nfactors = k, n.obs = n, fm = "minres", rotate = "oblimin")))
b <- suppressWarnings(cortest.bartlett(r, n = n))
kmo <- suppressMessages(suppressWarnings(KMO(r)))
scalars <- c(
  chi2 = f$STATISTIC, objective = f$objective, dof = f$dof, rmsea = f$RMSEA[["RMSEA"]],
  rmsea_lower = f$RMSEA[["lower"]], rmsea_upper = f$RMSEA[["upper"]], tli = f$TLI, null_chi2 = f$null.chisq,
  empirical_chi2 = f$chi, rmsr = f$rms, bic = f$BIC, bartlett_chi2 = b$chisq, bartlett_p = b$p.value,
  kmo = kmo$MSA, determinant = det(r)
)
write.csv(data.frame(name = names(scalars), value = as.numeric(scalars)), paste0(out, "_scalars.csv"), row.names = FALSE)
write.csv(unclass(f$loadings), paste0(out, "_loadings.csv"))
