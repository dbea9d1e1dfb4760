from tests.saga_harness import Saga


async def test_dump(saga: Saga):
    cust = await saga.customer()
    order = await saga.order(cust)
    result = await saga.handle(order.id).result()
    from temporalio.converter import default
    h = await saga.client.get_workflow_handle(f"order-{order.id}").fetch_history()
    for e in h.events:
        kind = e.WhichOneof("attributes")
        print(e.event_id, e.event_type, e.event_time.ToDatetime(), kind)
        if kind == "marker_recorded_event_attributes":
            a = e.marker_recorded_event_attributes
            print("  marker", a.marker_name, {k: [default().payload_converter.from_payloads(v.payloads)] for k, v in a.details.items() if k != "result"})
            for k, v in a.details.items():
                print("  ", k, [p.metadata for p in v.payloads])
    so = [e for e in h.events if e.HasField("start_child_workflow_execution_initiated_event_attributes")]
    print(so)
    c = [e for e in h.events if e.HasField("child_workflow_execution_started_event_attributes")]
    print(c)
