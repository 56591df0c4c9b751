"""Process definitions: one JSON file per case type (``services/registry/domain.py`` reads them).

* ``case_type``, ``version``, ``title``, ``deadline_s`` (the SLA);
* ``opened_by``: the event type that opens a case and the partner role that may send it;
* ``subject_person``, ``citizen_contact``, ``citizen_placeholders``: dotted paths into the
  opening event's data (the person, the citizen's contact, what their notices quote);
* ``parties``: the case's party slots, each ``{"name", "role"}`` and one source of the
  jurisdiction it needs: ``"opener": true`` (the partner that opened the case),
  ``"municipality": "<path>"`` (an eCH-0007 municipality: BFS number and canton) or
  ``"canton": "<path>"`` (a canton abbreviation); ``"unless_same_as": "<slot>"``: the slot
  applies only when it needs another jurisdiction than that slot (a move's departure tax
  office, only across cantons). A slot is filled by the one active partner with its role
  and exactly that jurisdiction (``services/registry/parties_domain.py``);
* ``milestones``: ``{"name", "event_type", "slot"}``, accepted only from the partner filling
  the slot; two may share an event type with different slots. The case completes once every
  milestone of a slot that applies to it is reached;
* ``rejection_slots``: the slots whose partner may reject the case (those and the milestone
  slots may also ask the citizen for something).
"""
