-- Reserved: a placeholder so the chain of migrations is unbroken on the issue-21 branch.
-- (Version 15 is another branch's work; the lead removes this file at merge.)
SELECT 1;
