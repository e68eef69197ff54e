-- Store the referral date and deadline the fold computes, so a holder's
-- inbox can list referrals by due date; index cases by holder for the same.
ALTER TABLE cases ADD COLUMN referred_on TEXT;
ALTER TABLE cases ADD COLUMN referral_due TEXT;
CREATE INDEX cases_holder ON cases(holder);
