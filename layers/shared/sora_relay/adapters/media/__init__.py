"""Downloads from addresses the worker does not control: users' reference files at submission,
finished videos and their thumbnails into S3. Every address passes a policy (`policy`), and every
connection goes to the address the policy vetted (`client`)."""
