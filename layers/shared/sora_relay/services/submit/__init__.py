"""Submit: one request message in, at most one provider submission out, however often it comes."""
