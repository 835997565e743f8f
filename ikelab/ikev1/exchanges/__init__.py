"""One module per IKEv1 exchange, each with the initiator's and the responder's side; `phase1` holds
what main mode and aggressive mode share."""
