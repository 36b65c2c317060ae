-- The 2025 rules (issue 19): a region's settings for waiting periods, back-payment and rewards in a
-- benefit year, kept with the fee policy as JSON (yibao_domain::CoverRules, docs/rules-2025.md) and
-- checked when read. A policy from before this migration has none: the national defaults apply.
ALTER TABLE fee_policies ADD COLUMN cover_rules TEXT
    CONSTRAINT fee_policies_cover_rules_size CHECK (cover_rules IS NULL OR length(cover_rules) <= 16384);
