// The header's live parts on every signed-in page.
