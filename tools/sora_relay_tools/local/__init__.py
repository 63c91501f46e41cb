"""The whole stack on one machine, without AWS or Docker.

moto's server plays AWS; the project's own template.yaml is transformed by the SAM
translator and deployed into it by moto's CloudFormation; `LambdaDriver` then does what
Lambda's event source mappings and schedules would, invoking the real handlers in this
process. Nothing here ships in the Lambda layer (the layer's Makefile leaves it out), and
moto and the translator are imported only when a local stack is started.
"""
