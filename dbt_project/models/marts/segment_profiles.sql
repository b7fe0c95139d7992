{#- One row per segment: its size and how tight it is. What sets it apart is in
    segment_traits (long form, every declared feature). -#}

with

customers as (

    select * from {{ ref('customer_segments') }}

),

per_segment as (

    select
        segment_id,
        count(*) as customers,
        avg(distance_to_centroid) as mean_distance_to_centroid

    from customers
    group by segment_id

),

final as (

    select
        segment_id,
        cast(customers as bigint) as customers,
        customers / sum(customers) over () as share_of_customers,
        mean_distance_to_centroid

    from per_segment

)

select * from final
