"""Namespace defaults at admission (docs/admission.md).

A namespace label ``storage.openshift.io/fsgroup-change-policy: OnRootMismatch`` or
``storage.openshift.io/selinux-change-policy: Recursive|MountOption`` makes new pods in that namespace get
``spec.securityContext.fsGroupChangePolicy`` / ``seLinuxChangePolicy`` unless they set it themselves.

    labels.py      the labels, their allowed values and the webhook paths (the contract)
    review.py      AdmissionReview v1 wire format (TypedDicts), parsing, response building
    pods.py        the pod decision: a JSON Patch, or nothing and a warning
    namespaces.py  the namespace decision: allowed, or refused naming the label and the allowed values
    server.py      HTTPS server (aiohttp) with certificate reloading; no decision lives there
    connections.py a deadline for reading each request on a connection (a slow client is cut)
    cli.py         ``s3csi webhook``

The webhook needs no Kubernetes API access: which label value a namespace carries is told by the path the
API server calls, chosen by one webhook entry's namespaceSelector per label value (deploy/admission/).
"""
