-- The citizen's citizen-services pseudonym, from identity: notifications key the
-- citizen's channel preference, opt-out and in-app inbox on it. Never the AHVN13.
ALTER TABLE cases ADD COLUMN citizen_id text;
