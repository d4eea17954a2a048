# Reference values from psych for the Python EFA parity tests (tests/test_efa.py).
# Usage: Rscript psych_fa.R OUT_DIR
# Writes OUT_DIR/bfi.csv (the 25 bfi items, complete rows), OUT_DIR/psych_scalars.csv (name,value)
# and one loadings CSV per extraction x rotation (OUT_DIR/loadings_<fm>_<rotate>.csv, rows = items).
suppressPackageStartupMessages({
  library(psych)
  library(psychTools)
  library(GPArotation)
})
args <- commandArgs(trailingOnly = TRUE)
out <- args[1]
dir.create(out, showWarnings = FALSE, recursive = TRUE)

data(bfi, package = "psychTools")
items <- bfi[complete.cases(bfi[, 1:25]), 1:25]
write.csv(items, file.path(out, "bfi.csv"), row.names = FALSE)
r <- cor(items)
n <- nrow(items)

scalars <- list(n_obs = n, determinant = det(r))
k <- KMO(r)
scalars$kmo <- k$MSA
for (item in names(k$MSAi)) scalars[[paste0("msa_", item)]] <- k$MSAi[[item]]
b <- cortest.bartlett(r, n = n)
scalars$bartlett_chi2 <- b$chisq
scalars$bartlett_df <- b$df

for (fm in c("minres", "ml")) {
  for (rot in c("oblimin", "promax")) {
    f <- fa(r, nfactors = 5, n.obs = n, fm = fm, rotate = rot)
    key <- paste0(fm, "_", rot)
    L <- unclass(f$loadings)
    write.csv(L, file.path(out, paste0("loadings_", key, ".csv")))
    write.csv(f$Phi, file.path(out, paste0("phi_", key, ".csv")), row.names = FALSE)
    scalars[[paste0(key, "_rmsea")]] <- f$RMSEA[["RMSEA"]]
    scalars[[paste0(key, "_rmsea_lower")]] <- f$RMSEA[["lower"]]
    scalars[[paste0(key, "_rmsea_upper")]] <- f$RMSEA[["upper"]]
    scalars[[paste0(key, "_tli")]] <- f$TLI
    scalars[[paste0(key, "_chi2")]] <- f$STATISTIC
    scalars[[paste0(key, "_dof")]] <- f$dof
    scalars[[paste0(key, "_objective")]] <- f$objective
    scalars[[paste0(key, "_communality_sum")]] <- sum(f$communality)
    scalars[[paste0(key, "_complexity_mean")]] <- mean(f$complexity)
    scalars[[paste0(key, "_ss_loadings_total")]] <- sum(f$Vaccounted["SS loadings", ])
  }
}

set.seed(20240419)
pa <- fa.parallel(items, fm = "minres", fa = "fa", n.iter = 20, quant = 0.95, plot = FALSE)
scalars$parallel_nfact <- pa$nfact
write.csv(data.frame(observed = pa$fa.values, simulated_mean = pa$fa.sim),
          file.path(out, "parallel.csv"), row.names = FALSE)

write.csv(data.frame(name = names(scalars), value = unlist(scalars)),
          file.path(out, "psych_scalars.csv"), row.names = FALSE)

# McDonald's omega (psych::omega, Schmid-Leiman from a minres/oblimin solution): omega.group and the oblique
# loadings it starts from (to match factors), for the bfi items and for Thurstone's 9 ability tests
write.csv(Thurstone, file.path(out, "thurstone.csv"))
cases <- list(list("bfi", r, nrow(items), c(2, 3, 5)), list("thurstone", Thurstone, 213, c(3)))
for (case in cases) {
  for (k in case[[4]]) {
    om <- omega(case[[2]], nfactors = k, n.obs = case[[3]], fm = "minres", plot = FALSE, two.ok = TRUE)
    write.csv(om$omega.group, file.path(out, paste0("omega_", case[[1]], "_", k, ".csv")))
    write.csv(unclass(om$schmid$oblique), file.path(out, paste0("omega_oblique_", case[[1]], "_", k, ".csv")))
  }
}
