"""The science of the connectomics service, free of transport."""
