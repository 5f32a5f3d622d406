"""kopf handlers that turn custom resources into Jobs and Jobs into status. Knows nothing of MLflow.

Importing the package registers the handlers, so ``kopf run -m ferry.controller`` runs the
operator; ``ferry operator`` does the same with its flags.
"""

from ferry.controller import handlers as handlers
from ferry.controller import periodic as periodic
