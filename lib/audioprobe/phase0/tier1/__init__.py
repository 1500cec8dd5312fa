"""phase0 Tier 1: learned next-step predictors (vMF × LogNormal, MDN), the injection diagnostic
and the representation comparison (definitions in the lane README, section "Tier 1")."""
