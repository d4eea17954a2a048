# Export psychTools::ability (16 binary items) with complete rows, for the tetrachoric parity test.
# Usage: Rscript export_ability.R OUT_CSV
suppressPackageStartupMessages(library(psychTools))
args <- commandArgs(trailingOnly = TRUE)
data(ability, package = "psychTools")
x <- ability[complete.cases(ability), ]
write.csv(x, args[1], row.names = FALSE)
