-- Long fields the platforms legitimately send (issue 8, "fields fit their columns").
--
-- A synopsis can run far past TEXT's 65,535 bytes (a serialised novel's blurb, a
-- pasted notice): MEDIUMTEXT holds 16 MiB. The pipeline's validation bounds every
-- text field by its column (crawler/pipelines/validate.py, COLUMN_WIDTHS), so a
-- value that still does not fit is cut there and counted, never refused here; the
-- whole text is also kept in MongoDB's raw document.

ALTER TABLE webtoon MODIFY summary MEDIUMTEXT NULL;
