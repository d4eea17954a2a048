# Reference CFA fit from lavaan on Holzinger & Swineford (1939) for tests/test_cfa.py.
# Usage: Rscript lavaan_cfa.R OUT_DIR
# Writes OUT_DIR/hs.csv (the data lavaan used) and OUT_DIR/lavaan_fit.csv (name,value).
suppressPackageStartupMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
out <- args[1]
dir.create(out, showWarnings = FALSE, recursive = TRUE)
model <- "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"
write.csv(HolzingerSwineford1939, file.path(out, "hs.csv"), row.names = FALSE)
fit <- cfa(model, data = HolzingerSwineford1939)
m <- fitMeasures(fit, c("chisq", "df", "cfi", "tli", "rmsea", "rmsea.ci.lower", "rmsea.ci.upper",
                        "srmr", "baseline.chisq", "baseline.df", "ntotal"))
write.csv(data.frame(name = names(m), value = as.numeric(m)), file.path(out, "lavaan_fit.csv"), row.names = FALSE)
# A second-order model on the same data (one factor above the three) for the higher-order path.
model2 <- paste(model, "g =~ visual + textual + speed", sep = "\n")
fit2 <- cfa(model2, data = HolzingerSwineford1939)
m2 <- fitMeasures(fit2, c("chisq", "df", "cfi", "tli", "rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "srmr"))
write.csv(data.frame(name = names(m2), value = as.numeric(m2)), file.path(out, "lavaan_fit_second_order.csv"),
          row.names = FALSE)
