with

customers as (

    select * from {{ ref('customer_segments') }}

),

segment_sizes as (

    select segment_id, count(*) as segment_customers
    from customers
    group by segment_id

),

base_mix as (

    select profession, count(*) / sum(count(*)) over () as base_share
    from customers
    group by profession

),

segment_mix as (

    select segment_id, profession, count(*) as customers
    from customers
    group by segment_id, profession

),

final as (

    select
        segment_mix.segment_id,
        segment_mix.profession,
        segment_mix.customers,
        segment_mix.customers / segment_sizes.segment_customers as share,
        base_mix.base_share,
        (segment_mix.customers / segment_sizes.segment_customers) / base_mix.base_share as lift,
        row_number() over (
            partition by segment_mix.segment_id
            order by segment_mix.customers desc, segment_mix.profession
        ) as profession_rank

    from segment_mix
    inner join segment_sizes
        on segment_mix.segment_id = segment_sizes.segment_id
    inner join base_mix
        on segment_mix.profession = base_mix.profession

)

select * from final
