-- Reserved: a placeholder so the chain of migrations is unbroken on the issue-21 branch.
-- (Versions 14 are other branches' work; the lead removes this file at merge.)
SELECT 1;
