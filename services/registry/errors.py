"""The registry's refusals, by what they say about an event; all are permanent.

The ingress route's dead-letter hook classes them for the audit log
(``services.registry.refusals.REASON_CLASSES``), subclasses before their parents.
"""

from __future__ import annotations

from hub.errors import HubError, PermanentError


class NotAuthorized(PermanentError):
    """The sender may not do this: unknown or suspended partner, or a role without the right."""


class NotAParty(NotAuthorized):
    """The sender has the role, but does not fill the slot of this case that the step needs
    (another municipality's move, the other side of it): the case stays untouched."""


class ForeignIngressTopic(NotAuthorized):
    """An event on a partner's own ingress topic that claims another sender."""


class CaseAlreadyFinal(PermanentError):
    """A step on a case that is completed or rejected: nothing changes any more."""


class CaseExists(PermanentError):
    """An opening event for a business process id that already has a case."""


class PersonErased(PermanentError):
    """The case belongs to a person whose data keys are destroyed: nothing more is stored for it."""


class UnknownSlot(PermanentError):
    """A subscription names a party slot its case type does not define: it could never apply."""


class StorageFailed(HubError):
    """The database refused a statement of a worker (not a connection failure): logged, tried again."""
